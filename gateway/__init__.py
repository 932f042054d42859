"""OCPP 1.6J gateway: websocket server, per-charger handler, registry and command activities."""
