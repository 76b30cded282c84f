"""One module per page: its frozen contexts, ``build_<page>(services, filters)``, its handlers.

Builders do the reading (store, engine, JetStream) and hand templates display-ready
values; templates loop, branch on words and call macros.
"""
