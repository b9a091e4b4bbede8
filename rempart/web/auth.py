"""Django's password check, refusing accounts locked by the access policy."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend

from rempart.access.policy import is_locked


class LockAwareBackend(ModelBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        return bool(super().user_can_authenticate(user)) and not is_locked(user.pk)
