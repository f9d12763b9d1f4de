"""Engines turn rendered chat prompts into sampled texts. They know nothing of records or scores."""

from grm_cli.engine.base import ContextOverflow, Engine, ForcedTail, Generation, GenerationRequest

__all__ = ["ContextOverflow", "Engine", "Generation", "GenerationRequest", "ForcedTail"]
