"""Running trainkit in production: health checks (`doctor`), explicit schema upgrades (`migrations`) and
Prometheus metrics computed from the store (`metrics`). See docs/operations.md."""
