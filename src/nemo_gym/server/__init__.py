"""The shared base every Gym server is built on, and the one client every Gym process calls with.

``base`` (SimpleServer, its ``on_startup``/``on_shutdown`` hooks, the app factory),
``sessions`` (per-rollout session ids), ``session_store`` (per-rollout state with a TTL and a
bound), ``errors`` (the one exception-to-HTTP mapping, upstream failures included),
``http_client`` (the pooled outbound client with timeouts and bounded retries), ``transport``
(how its calls are sent: aiohttp, or an app in process), ``client`` (``ServerClient``: calls by
instance name), ``routing`` (fast JSON routes) and ``launch`` (how a server process starts). A
server implementation writes only its routes and logic, and imports these through
``nemo_gym.authoring``.
"""
