"""Server-side mesh pieces every service shares: error mapping, metrics, health, interceptors."""
