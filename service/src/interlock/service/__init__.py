"""Interlock service: consumes events, fires rules, runs actions, serves the API."""

__all__: list[str] = []
