"""Django's password check, refusing accounts locked by the access policy."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from rempart.access.policy import is_locked


class LockAwareBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user)) and not is_locked(user.pk)

    def get_user(self, user_id: Any) -> Any:
        """The signed-in user with its staff record, in one query (every page needs both)."""
        user = get_user_model()._default_manager.select_related("staff").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
