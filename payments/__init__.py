"""Payment providers: the O!Dengi API client, webhook signatures, card checks, the simulator."""
