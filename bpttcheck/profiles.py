"""The Hypothesis settings of the oracle's own checks, kept to those checks.

Hypothesis' ``settings.load_profile`` is process-global: a plugin calling it would change every
other ``@given`` test of the run. So nothing here loads a profile. The oracle's checks carry
their settings explicitly (``@settings(settings_for(profile))``), under prefixed names that
cannot collide with a project's own profiles:

==========  ======================  ===========================================================
profile     Hypothesis profile      what it does
==========  ======================  ===========================================================
dev         ``bpttcheck-dev``       15 cases per check, random: for exploring
ci          ``bpttcheck-ci``        25 cases, derandomized (the same cases every run), no database
thorough    ``bpttcheck-thorough``  300 cases, random
==========  ======================  ===========================================================

A project that wants other numbers registers its own profile under one of these names before
the checks run (``settings.register_profile("bpttcheck-ci", …)``): a registered name is kept.

>>> profile_name("ci")
'bpttcheck-ci'
>>> default_profile({"CI": "true"}), default_profile({}), default_profile({"BPTTCHECK_PROFILE": "thorough"})
('ci', 'dev', 'thorough')
"""

from __future__ import annotations

import os
from typing import Mapping

__all__ = ["ENV_PROFILE", "PREFIX", "PROFILES", "default_profile", "profile_name", "register_profiles",
           "settings_for"]

PROFILES = ("dev", "ci", "thorough")
PREFIX = "bpttcheck-"
ENV_PROFILE = "BPTTCHECK_PROFILE"

#: profile -> the settings it sets (everything else comes from Hypothesis' "default" profile,
#: never from whatever profile the surrounding test run has loaded)
TABLE = {
    "dev": dict(max_examples=15, derandomize=False),
    "ci": dict(max_examples=25, derandomize=True, database=None, print_blob=True),
    "thorough": dict(max_examples=300, derandomize=False, print_blob=True),
}


def profile_name(profile: str) -> str:
    """The Hypothesis profile behind a user-facing name: ``"ci"`` -> ``"bpttcheck-ci"``."""
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r}: expected one of {', '.join(PROFILES)}")
    return PREFIX + profile


def default_profile(environ: Mapping[str, str] | None = None) -> str:
    """``$BPTTCHECK_PROFILE``, else ``"ci"`` under CI (``$CI`` set), else ``"dev"``."""
    environ = os.environ if environ is None else environ
    chosen = environ.get(ENV_PROFILE, "").strip()
    if chosen:
        return chosen
    return "ci" if environ.get("CI") else "dev"


def register_profiles() -> None:
    """Register ``bpttcheck-dev``/``-ci``/``-thorough`` where they are not registered yet. Loads
    nothing: the profile in force for everyone else stays what it was."""
    from hypothesis import HealthCheck, settings
    from hypothesis.errors import InvalidArgument

    base = settings.get_profile("default")
    # Declines are rejected cases (the runner keeps searching within what a target supports), so
    # filtering is expected; slow targets and large cases are the users' and not a defect.
    quiet = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
    for name, values in TABLE.items():
        try:
            settings.get_profile(PREFIX + name)
        except InvalidArgument:
            settings.register_profile(PREFIX + name, parent=base, deadline=None, suppress_health_check=quiet,
                                      **values)


def settings_for(profile: str, seed: int | None = None):
    """The ``hypothesis.settings`` of the oracle's checks under ``profile`` (a user-facing name,
    or a Hypothesis profile name registered by the caller). With a ``seed``, derandomization is
    off, so that the seed decides the cases."""
    from hypothesis import settings
    from hypothesis.errors import InvalidArgument

    register_profiles()
    name = profile_name(profile) if profile in PROFILES else profile
    try:
        chosen = settings.get_profile(name)
    except InvalidArgument:
        raise ValueError(f"profile={profile!r}: expected one of {', '.join(PROFILES)}") from None
    return settings(chosen, derandomize=False) if seed is not None else chosen
