"""The web layer: every HTTP route, the auth, every HTML page. It sits on top:
it calls the engine, the readiness report and the daemon through agent.web.host,
and nothing below imports it."""
