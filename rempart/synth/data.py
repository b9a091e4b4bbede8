"""Reference lists for the synthetic group: given-name fashions, places, streets, clinical texts.

Family names come from Faker's fr_FR list (ranked by frequency, as INSEE counts them) followed by
a long tail of plausible rare names made from French name parts (see names.py). Nothing here
names a real patient.
"""

from __future__ import annotations

# Given names in fashion by birth decade (INSEE birth registers, roughly top 20 per decade).
GIVEN_NAMES_BY_DECADE: dict[int, dict[str, tuple[str, ...]]] = {
    1920: {
        "M": ("Jean", "Pierre", "André", "René", "Marcel", "Louis", "Roger", "Georges", "Henri",
              "Robert", "Maurice", "Paul", "Raymond", "Lucien", "Joseph", "Fernand", "Émile",
              "Albert", "Marius", "Gaston"),
        "F": ("Marie", "Jeanne", "Marguerite", "Germaine", "Yvonne", "Suzanne", "Madeleine",
              "Louise", "Simone", "Odette", "Denise", "Paulette", "Marcelle", "Lucienne", "Andrée",
              "Renée", "Hélène", "Berthe", "Raymonde", "Juliette"),
    },
    1930: {
        "M": ("Jean", "Pierre", "André", "René", "Roger", "Jacques", "Marcel", "Robert", "Louis",
              "Claude", "Michel", "Georges", "Raymond", "Henri", "Bernard", "Maurice", "Paul",
              "Guy", "Lucien", "Gérard"),
        "F": ("Marie", "Jeanne", "Monique", "Simone", "Denise", "Yvette", "Paulette", "Suzanne",
              "Jacqueline", "Colette", "Odette", "Madeleine", "Ginette", "Germaine", "Yvonne",
              "Renée", "Andrée", "Lucienne", "Micheline", "Christiane"),
    },
    1940: {
        "M": ("Jean", "Michel", "Claude", "Pierre", "Jacques", "Bernard", "André", "Gérard",
              "Daniel", "Alain", "Roger", "René", "Robert", "Guy", "Serge", "Christian", "Marcel",
              "Yves", "Jean-Claude", "Jean-Pierre"),
        "F": ("Marie", "Monique", "Jacqueline", "Nicole", "Françoise", "Michèle", "Danielle",
              "Christiane", "Josette", "Colette", "Annie", "Yvette", "Jeannine", "Simone",
              "Denise", "Odette", "Ginette", "Huguette", "Paulette", "Andrée"),
    },
    1950: {
        "M": ("Jean", "Michel", "Alain", "Philippe", "Daniel", "Bernard", "Patrick", "Gérard",
              "Christian", "Jean-Pierre", "Jacques", "Claude", "Serge", "Dominique", "Pierre",
              "Jean-Claude", "Didier", "Gilles", "Jean-Louis", "Francis"),
        "F": ("Marie", "Martine", "Françoise", "Monique", "Nicole", "Christiane", "Catherine",
              "Danielle", "Jacqueline", "Annie", "Michèle", "Sylvie", "Chantal", "Évelyne",
              "Brigitte", "Bernadette", "Dominique", "Marie-Claude", "Josiane", "Colette"),
    },
    1960: {
        "M": ("Philippe", "Patrick", "Pascal", "Thierry", "Éric", "Didier", "Christophe",
              "Dominique", "Alain", "Michel", "Jean-Luc", "Bruno", "Laurent", "Frédéric", "Gilles",
              "Olivier", "Denis", "Jean", "Francis", "Hervé"),
        "F": ("Sylvie", "Catherine", "Martine", "Isabelle", "Christine", "Nathalie", "Véronique",
              "Brigitte", "Patricia", "Françoise", "Dominique", "Chantal", "Pascale", "Corinne",
              "Valérie", "Laurence", "Marie", "Évelyne", "Joëlle", "Muriel"),
    },
    1970: {
        "M": ("Christophe", "Stéphane", "Laurent", "David", "Frédéric", "Sébastien", "Nicolas",
              "Olivier", "Éric", "Thierry", "Cédric", "Jérôme", "Pascal", "Franck", "Vincent",
              "Arnaud", "Emmanuel", "Fabrice", "Ludovic", "Yannick"),
        "F": ("Nathalie", "Isabelle", "Sandrine", "Valérie", "Sylvie", "Stéphanie", "Céline",
              "Karine", "Christelle", "Véronique", "Virginie", "Sophie", "Florence", "Émilie",
              "Delphine", "Laurence", "Carole", "Aurélie", "Séverine", "Cécile"),
    },
    1980: {
        "M": ("Nicolas", "Julien", "Sébastien", "Guillaume", "Mickaël", "Jérémy", "Romain",
              "Anthony", "Christophe", "David", "Mathieu", "Cédric", "Jonathan", "Thomas",
              "Alexandre", "Fabien", "Benjamin", "Damien", "Vincent", "Yohann"),
        "F": ("Aurélie", "Émilie", "Céline", "Julie", "Stéphanie", "Élodie", "Sandrine", "Audrey",
              "Mélanie", "Virginie", "Laetitia", "Sophie", "Caroline", "Jennifer", "Vanessa",
              "Marion", "Amandine", "Anne-Sophie", "Claire", "Jessica"),
    },
    1990: {
        "M": ("Thomas", "Nicolas", "Julien", "Maxime", "Kévin", "Alexandre", "Quentin", "Antoine",
              "Romain", "Guillaume", "Anthony", "Florian", "Jérémy", "Clément", "Pierre", "Hugo",
              "Vincent", "Benjamin", "Lucas", "Mathieu"),
        "F": ("Julie", "Laura", "Marion", "Camille", "Sarah", "Manon", "Pauline", "Marine",
              "Mélanie", "Anaïs", "Émilie", "Justine", "Morgane", "Léa", "Chloé", "Claire",
              "Caroline", "Élodie", "Charlotte", "Océane"),
    },
    2000: {
        "M": ("Lucas", "Thomas", "Hugo", "Théo", "Maxime", "Enzo", "Mathis", "Alexandre",
              "Clément", "Nathan", "Antoine", "Quentin", "Louis", "Baptiste", "Tom", "Romain",
              "Léo", "Valentin", "Paul", "Arthur"),
        "F": ("Léa", "Manon", "Chloé", "Camille", "Emma", "Sarah", "Océane", "Marie", "Inès",
              "Clara", "Laura", "Mathilde", "Lucie", "Anaïs", "Julie", "Pauline", "Lisa",
              "Juliette", "Justine", "Zoé"),
    },
    2010: {
        "M": ("Gabriel", "Lucas", "Léo", "Louis", "Raphaël", "Jules", "Hugo", "Arthur", "Nathan",
              "Adam", "Ethan", "Paul", "Sacha", "Gabin", "Noah", "Tom", "Mohamed", "Timéo",
              "Nolan", "Aaron"),
        "F": ("Emma", "Jade", "Louise", "Alice", "Chloé", "Lina", "Léa", "Manon", "Rose", "Anna",
              "Inès", "Camille", "Lola", "Ambre", "Léna", "Zoé", "Juliette", "Julia", "Lou",
              "Mila"),
    },
    2020: {
        "M": ("Gabriel", "Léo", "Raphaël", "Louis", "Maël", "Noah", "Jules", "Arthur", "Adam",
              "Lucas", "Sacha", "Isaac", "Gabin", "Hugo", "Liam", "Eden", "Aaron", "Nino", "Malo",
              "Tiago"),
        "F": ("Jade", "Louise", "Ambre", "Alba", "Emma", "Rose", "Alice", "Romy", "Anna", "Lina",
              "Mia", "Léna", "Julia", "Iris", "Mila", "Agathe", "Inaya", "Chloé", "Lou", "Jeanne"),
    },
}

# Birth départements of a Paris-region population (weights), then the rest of France.
BIRTH_DEPARTMENTS: tuple[tuple[str, float], ...] = (
    ("75", 24.0), ("92", 7.0), ("93", 7.0), ("94", 6.0), ("91", 4.5), ("95", 4.0), ("78", 4.5),
    ("77", 4.0), ("59", 2.0), ("62", 1.2), ("69", 1.2), ("13", 1.2), ("33", 0.8), ("31", 0.7),
    ("44", 0.7), ("35", 0.8), ("29", 0.9), ("22", 0.6), ("56", 0.6), ("76", 1.0), ("14", 0.6),
    ("45", 0.8), ("28", 0.6), ("60", 1.0), ("02", 0.8), ("80", 0.8), ("51", 0.7), ("57", 0.8),
    ("67", 0.7), ("21", 0.5), ("63", 0.5), ("87", 0.4), ("37", 0.5), ("49", 0.5), ("72", 0.5),
    ("86", 0.4), ("17", 0.4), ("64", 0.4), ("06", 0.5), ("83", 0.4), ("34", 0.5), ("38", 0.5),
    ("42", 0.4), ("71", 0.4), ("89", 0.4), ("10", 0.3), ("18", 0.3), ("36", 0.2), ("41", 0.3),
    ("2A", 0.15), ("2B", 0.15), ("971", 0.6), ("972", 0.6), ("974", 0.5), ("973", 0.2),
)

# Born abroad: INSEE country codes (99 + 3 digits) of the commonest countries of birth.
BIRTH_COUNTRIES: tuple[tuple[str, str, float], ...] = (
    ("99352", "Algérie", 3.0), ("99350", "Maroc", 2.5), ("99351", "Tunisie", 1.2),
    ("99139", "Portugal", 1.6), ("99134", "Espagne", 0.6), ("99127", "Italie", 0.6),
    ("99131", "Belgique", 0.3), ("99109", "Allemagne", 0.3), ("99132", "Royaume-Uni", 0.2),
    ("99208", "Turquie", 0.5),
)

# Where the group's patients live: communes of Île-de-France with their postcodes.
RESIDENCES: tuple[tuple[str, str, float], ...] = (
    ("75011", "PARIS", 3.0), ("75012", "PARIS", 2.5), ("75013", "PARIS", 3.0),
    ("75014", "PARIS", 2.5), ("75015", "PARIS", 4.0), ("75017", "PARIS", 3.0),
    ("75018", "PARIS", 3.0), ("75019", "PARIS", 3.0), ("75020", "PARIS", 3.0),
    ("92100", "BOULOGNE-BILLANCOURT", 3.0), ("92130", "ISSY-LES-MOULINEAUX", 1.8),
    ("92200", "NEUILLY-SUR-SEINE", 1.5), ("92300", "LEVALLOIS-PERRET", 1.8),
    ("92000", "NANTERRE", 2.5), ("92700", "COLOMBES", 2.2), ("92600", "ASNIERES-SUR-SEINE", 2.3),
    ("93100", "MONTREUIL", 3.0), ("93200", "SAINT-DENIS", 3.0), ("93300", "AUBERVILLIERS", 2.2),
    ("93000", "BOBIGNY", 1.5), ("93600", "AULNAY-SOUS-BOIS", 2.2), ("94000", "CRETEIL", 2.5),
    ("94200", "IVRY-SUR-SEINE", 1.6), ("94300", "VINCENNES", 1.3), ("94400", "VITRY-SUR-SEINE", 2.5),
    ("94100", "SAINT-MAUR-DES-FOSSES", 2.2), ("91000", "EVRY-COURCOURONNES", 1.8),
    ("91300", "MASSY", 1.5), ("91100", "CORBEIL-ESSONNES", 1.5), ("95000", "CERGY", 1.8),
    ("95100", "ARGENTEUIL", 3.0), ("95200", "SARCELLES", 1.8), ("78000", "VERSAILLES", 2.5),
    ("78100", "SAINT-GERMAIN-EN-LAYE", 1.2), ("78200", "MANTES-LA-JOLIE", 1.3),
    ("77000", "MELUN", 1.2), ("77100", "MEAUX", 1.6), ("77300", "FONTAINEBLEAU", 0.5),
)

# E-mail providers, on the reserved .test top-level domain: realistic, never deliverable.
EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("gmail.test", 40.0), ("orange.test", 15.0), ("hotmail.test", 10.0), ("free.test", 8.0),
    ("yahoo.test", 6.0), ("sfr.test", 5.0), ("laposte.test", 5.0), ("outlook.test", 5.0),
    ("wanadoo.test", 4.0), ("icloud.test", 2.0),
)

STREET_KINDS: tuple[str, ...] = (
    "rue", "rue", "rue", "rue", "avenue", "avenue", "boulevard", "allée", "place", "impasse",
    "chemin", "square", "villa", "quai",
)
STREET_NAMES: tuple[str, ...] = (
    "de la République", "Victor Hugo", "Jean Jaurès", "du Général de Gaulle", "Pasteur",
    "de la Paix", "Gambetta", "des Écoles", "de la Gare", "du Moulin", "Voltaire", "Jules Ferry",
    "de l'Église", "Émile Zola", "Anatole France", "Carnot", "du Château", "des Lilas",
    "de Verdun", "Paul Vaillant-Couturier", "Aristide Briand", "Jean Moulin", "de Paris",
    "Henri Barbusse", "Marcel Cachin", "Gabriel Péri", "de la Liberté", "des Tilleuls",
    "Louis Pasteur", "du Stade", "Danton", "Condorcet", "de Stalingrad", "Saint-Antoine",
    "de Belleville", "de Charenton", "de Vaugirard", "de Lourmel", "Lecourbe", "de Tolbiac",
    "Mouffetard", "de la Convention", "des Pyrénées", "Ordener", "de Clichy", "Marx Dormoy",
    "du Faubourg Saint-Denis", "Oberkampf", "de Montreuil", "Pierre Brossolette",
    "Albert Camus", "des Peupliers", "des Acacias", "des Marronniers", "du Marché",
    "de la Fontaine", "des Vignes", "du Parc", "de l'Abbé Groult", "Maurice Thorez",
    "Salvador Allende", "Rosa Parks", "Simone Veil", "Olympe de Gouges", "Lucie Aubrac",
)

# Group establishments (fictional names) and the units a kind of establishment runs.
CLINIC_NAMES: tuple[str, ...] = (
    "Clinique des Lilas", "Clinique du Parc Montsouris", "Clinique Saint-Vincent",
    "Clinique de la Marne", "Clinique des Peupliers", "Clinique du Val de Seine",
    "Clinique Sainte-Geneviève", "Clinique de l'Yvette", "Clinique des Cèdres",
    "Clinique du Pont de Sèvres", "Clinique de la Boucle", "Clinique Jeanne d'Arc",
)
HEALTH_CENTRE_NAMES: tuple[str, ...] = (
    "Centre de santé Saint-Michel", "Centre de santé des Buttes", "Centre de santé de la Gare",
)
NURSING_HOME_NAMES: tuple[str, ...] = (
    "EHPAD Les Tilleuls", "EHPAD Le Clos Fleuri", "EHPAD La Roseraie", "EHPAD Les Jardins d'Automne",
)
ESTABLISHMENT_CITIES: tuple[tuple[str, str], ...] = (
    ("75", "PARIS"), ("92", "BOULOGNE-BILLANCOURT"), ("94", "CRETEIL"), ("93", "MONTREUIL"),
    ("91", "MASSY"), ("95", "ARGENTEUIL"), ("78", "VERSAILLES"), ("77", "MEAUX"),
)

CLINIC_SERVICES: tuple[tuple[str, str], ...] = (
    ("MED", "Médecine polyvalente"), ("CARDIO", "Cardiologie"), ("ORTHO", "Chirurgie orthopédique"),
    ("VISC", "Chirurgie viscérale"), ("AMBU", "Chirurgie ambulatoire"), ("URG", "Urgences"),
    ("CONS", "Consultations externes"),
)
HEALTH_CENTRE_SERVICES: tuple[tuple[str, str], ...] = (
    ("CONS", "Consultations"), ("SOINS", "Soins infirmiers"),
)
NURSING_HOME_SERVICES: tuple[tuple[str, str], ...] = (
    ("HEB", "Hébergement permanent"), ("UPAD", "Unité protégée"),
)

# Reasons for a stay, by unit code (clinical text: encrypted under the clinical keyset).
STAY_REASONS: dict[str, tuple[str, ...]] = {
    "MED": ("Pneumopathie communautaire", "Pyélonéphrite aiguë", "Altération de l'état général",
            "Bilan de chute", "Déshydratation", "Érysipèle de jambe", "Décompensation de BPCO"),
    "CARDIO": ("Décompensation cardiaque", "Fibrillation atriale rapide", "Douleur thoracique",
               "Bilan de syncope", "Pose de pacemaker"),
    "ORTHO": ("Prothèse totale de hanche", "Prothèse totale de genou", "Fracture du col du fémur",
              "Ostéosynthèse de cheville", "Arthroscopie du genou"),
    "VISC": ("Cholécystectomie", "Appendicectomie", "Cure de hernie inguinale",
             "Occlusion sur bride", "Sigmoïdite"),
    "AMBU": ("Cataracte", "Canal carpien", "Coloscopie", "Exérèse de lésion cutanée",
             "Arthroscopie"),
    "URG": ("Traumatisme du poignet", "Douleur abdominale", "Malaise", "Plaie de la main",
            "Crise d'asthme", "Céphalées"),
    "CONS": ("Consultation de suivi", "Consultation préopératoire", "Consultation d'anesthésie",
             "Contrôle postopératoire"),
    "SOINS": ("Pansement", "Injection", "Prise de sang"),
    "HEB": ("Entrée en hébergement permanent", "Perte d'autonomie", "Maintien à domicile impossible"),
    "UPAD": ("Troubles cognitifs évolués", "Maladie d'Alzheimer"),
}

SPECIALTIES_BY_SERVICE: dict[str, str] = {
    "MED": "Médecine interne", "CARDIO": "Cardiologie", "ORTHO": "Chirurgie orthopédique",
    "VISC": "Chirurgie viscérale", "AMBU": "Anesthésie-réanimation", "URG": "Médecine d'urgence",
    "CONS": "Médecine générale", "SOINS": "Médecine générale", "HEB": "Gériatrie",
    "UPAD": "Gériatrie",
}

# Common prescriptions: (catalogue code, dose, route, frequency, days).
PRESCRIPTION_LINES: tuple[tuple[str, str, str, str, int], ...] = (
    ("paracetamol-1g-cp", "1 comprimé", "oral", "4 fois par jour si douleur", 5),
    ("paracetamol-1g-perf", "1 g", "iv", "toutes les 6 heures", 2),
    ("ibuprofene-400-cp", "1 comprimé", "oral", "3 fois par jour au repas", 5),
    ("nefopam-20-inj", "20 mg", "iv", "toutes les 6 heures", 2),
    ("tramadol-50-gel", "1 gélule", "oral", "toutes les 6 heures si douleur", 5),
    ("morphine-10-inj", "5 mg", "sc", "toutes les 4 heures si douleur", 2),
    ("amoxicilline-1g-cp", "1 comprimé", "oral", "3 fois par jour", 7),
    ("amox-clav-1g-cp", "1 comprimé", "oral", "3 fois par jour", 7),
    ("ceftriaxone-1g-inj", "1 g", "iv", "1 fois par jour", 5),
    ("metformine-850-cp", "1 comprimé", "oral", "2 fois par jour", 30),
    ("insuline-glargine-100", "16 UI", "sc", "1 fois par jour le soir", 30),
    ("atorvastatine-20-cp", "1 comprimé", "oral", "1 fois par jour le soir", 90),
    ("ramipril-5-cp", "1 comprimé", "oral", "1 fois par jour", 90),
    ("amlodipine-5-gel", "1 gélule", "oral", "1 fois par jour", 90),
    ("bisoprolol-5-cp", "1 comprimé", "oral", "1 fois par jour le matin", 90),
    ("furosemide-40-cp", "1 comprimé", "oral", "1 fois par jour le matin", 30),
    ("furosemide-20-inj", "40 mg", "iv", "2 fois par jour", 3),
    ("omeprazole-20-gel", "1 gélule", "oral", "1 fois par jour", 30),
    ("pantoprazole-40-cp", "1 comprimé", "oral", "1 fois par jour", 30),
    ("levothyroxine-75-cp", "1 comprimé", "oral", "1 fois par jour à jeun", 90),
    ("enoxaparine-4000-inj", "4000 UI", "sc", "1 fois par jour", 10),
    ("apixaban-5-cp", "1 comprimé", "oral", "2 fois par jour", 90),
    ("aspirine-75-sachet", "1 sachet", "oral", "1 fois par jour", 90),
    ("salbutamol-100-inh", "2 bouffées", "inhaled", "si gêne respiratoire", 30),
    ("prednisolone-20-cp", "2 comprimés", "oral", "1 fois par jour le matin", 5),
    ("zopiclone-7-5-cp", "1 comprimé", "oral", "au coucher si besoin", 14),
    ("sertraline-50-gel", "1 gélule", "oral", "1 fois par jour", 30),
    ("donepezil-10-cp", "1 comprimé", "oral", "1 fois par jour le soir", 90),
    ("ondansetron-8-cp", "1 comprimé", "oral", "2 fois par jour si nausées", 3),
    ("macrogol-10g-sachet", "1 sachet", "oral", "1 fois par jour", 14),
    ("colecalciferol-100000-amp", "1 ampoule", "oral", "1 fois tous les 3 mois", 1),
)
