"""The shared base every Gym server is built on.

``base`` (SimpleServer and the app factory), ``sessions`` (per-rollout session ids),
``errors`` (the one exception-to-HTTP mapping), ``http_client`` (the pooled outbound client
with timeouts and bounded retries), ``routing`` (fast JSON routes) and ``launch`` (how a server
process starts). A server implementation writes only its routes and logic.
"""
