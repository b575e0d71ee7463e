"""fetch_requests, first: is the bot token allowed to do what this run will do?

Slack sends a token's scopes on every answer (``X-OAuth-Scopes``); ``auth.test`` is the first call of
a run, so a missing scope fails the run before anything is read, naming each scope and its use.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from credit_bot import slack
from credit_bot.settings import Settings

if TYPE_CHECKING:
    from slack_sdk import WebClient

log = logging.getLogger(__name__)


def needed_scopes(settings: Settings) -> tuple[list[str], list[str]]:
    """The scopes this run needs (``"a|b"``: either), and those only going live needs.

    Derived from the calls the bot makes: reading the channel always; posting when live (or a
    dry-run preview); the DM scopes when there are operators to DM; reactions when they are on.
    """
    reading = ["channels:history|groups:history"]
    posting: list[str] = ["chat:write"]
    if settings.operators:
        posting += ["im:write", "im:history"]
    reactions = any((settings.reaction_picked_up, settings.reaction_answered, settings.reaction_escalated))
    if settings.dry_run:
        now = posting if settings.dry_run_preview else []
        if reactions and settings.reactions_in_dry_run:
            now = [*now, "reactions:write"]
        later = [s for s in [*posting, *(["reactions:write"] if reactions else [])] if s not in now]
        return reading + now, later
    return reading + posting + (["reactions:write"] if reactions else []), []


def check_scopes(client: WebClient, settings: Settings) -> slack.Identity:
    """Ask Slack who the bot is; :class:`~credit_bot.slack.MissingScopes` if its token lacks a scope
    this run needs. Returns the bot's user and bot ids, to recognise its own posts."""
    identity, granted = slack.granted_scopes(client)
    if granted is None:
        log.warning("Slack sent no X-OAuth-Scopes header: the bot token's scopes cannot be checked")
        return identity
    required, for_live = needed_scopes(settings)
    missing = slack.missing_scopes(granted, required)
    if missing:
        raise slack.MissingScopes(slack.scope_failure(missing))
    later = slack.missing_scopes(granted, for_live)
    if later:
        log.warning("dry run: going live will fail at once, because %s", slack.scope_failure(later))
    return identity
