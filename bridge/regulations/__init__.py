"""Regulations: rule packs in YAML and the pure engine that turns an event into a plan."""

from bridge.regulations.engine import evaluate
from bridge.regulations.pack import Pack, Rule, load_pack

__all__ = ["Pack", "Rule", "evaluate", "load_pack"]
