"""HTTP handlers. Thin: they translate between HTTP and the services in `Services`."""
