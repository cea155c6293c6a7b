"""Commands to chargers wherever they are connected: the router, its transports and wire format."""
