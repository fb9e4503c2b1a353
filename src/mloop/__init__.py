"""mloop."""
