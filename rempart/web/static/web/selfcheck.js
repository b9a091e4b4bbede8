// The patients' self-check: the identity typed is folded and hashed here, in the browser
// (PBKDF2-SHA256 with the publication's public salt, as rempart/breach/selfcheck.py does); only
// the hash's first bits (a bucket many identities share) go to the server, which answers with
// every entry of the bucket, padded. The comparison and the reading of the categories happen
// here too.
(function () {
  "use strict";
  var form = document.getElementById("selfcheck");
  var result = document.getElementById("selfcheck-result");
  var config = JSON.parse(document.getElementById("selfcheck-config").textContent);
  var LIGATURES = { "Œ": "OE", "Æ": "AE", "ß": "SS", "œ": "OE", "æ": "AE" };

  function fold(value) {
    var upper = value.replace(/[ŒÆßœæ]/g, function (c) { return LIGATURES[c]; }).toUpperCase();
    return upper.normalize("NFKD").replace(/[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]/g, "")
      .replace(/[^A-Z0-9]/g, "");
  }

  function bytesOf(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) { out[i] = parseInt(hex.substr(i * 2, 2), 16); }
    return out;
  }

  function hexOf(bytes) {
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function hash(key, publication) {
    var encoded = new TextEncoder().encode(key);
    return crypto.subtle.importKey("raw", encoded, "PBKDF2", false, ["deriveBits"]).then(function (k) {
      return crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: bytesOf(publication.salt),
        iterations: publication.iterations }, k, 256);
    }).then(function (bits) { return new Uint8Array(bits); });
  }

  function check(key, publication) {
    return hash(key, publication).then(function (h) {
      var head = ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
      var bucket = head >>> (32 - publication.bits);
      return fetch(config.bucketUrl, {
        method: "POST", credentials: "omit", cache: "no-store",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ p: publication.id, b: bucket })
      }).then(function (response) {
        if (!response.ok) {
          return response.json().then(function (body) { throw new Error(body.error || "erreur"); });
        }
        return response.json();
      }).then(function (answer) {
        var tag = hexOf(h.slice(0, 16));
        for (var i = 0; i < answer.entries.length; i++) {
          if (answer.entries[i][0] === tag) { return answer.entries[i][1] ^ ((h[16] << 8) | h[17]); }
        }
        return null;
      });
    });
  }

  function show(mask) {
    result.textContent = "";
    var title = document.createElement("p");
    title.className = mask === null ? "selfcheck-absent" : "selfcheck-found";
    var strong = document.createElement("strong");
    strong.textContent = mask === null ? config.texts.absent : config.texts.found;
    title.appendChild(strong);
    result.appendChild(title);
    if (mask !== null) {
      var list = document.createElement("ul");
      config.categories.forEach(function (c) {
        if (mask & c.bit) {
          var item = document.createElement("li");
          item.textContent = c.label + " : risque " + c.risk + "." + (c.advice ? " " + c.advice : "");
          list.appendChild(item);
        }
      });
      result.appendChild(list);
    }
    result.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var family = fold(form.elements.family.value), given = fold(form.elements.given.value);
    var born = form.elements.born.value;
    if (!family || !given || !/^\d{4}-\d{2}-\d{2}$/.test(born)) {
      result.textContent = config.texts.incomplete;
      result.focus();
      return;
    }
    result.textContent = config.texts.working;
    var key = family + "|" + given + "|" + born;
    Promise.all(config.publications.map(function (p) { return check(key, p); })).then(function (masks) {
      var found = masks.filter(function (m) { return m !== null; });
      show(found.length ? found.reduce(function (a, b) { return a | b; }, 0) : null);
    }).catch(function (error) {
      result.textContent = error.message;
      result.focus();
    });
  });
})();
