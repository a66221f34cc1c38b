"""Actors: ``ActorClass`` (what ``@remote`` makes of a class), ``ActorHandle``, and
``exit_actor()`` to end the current actor from inside."""

from manta._private.api.actor import ActorClass, ActorHandle, ActorMethod, exit_actor, method

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "exit_actor", "method"]
