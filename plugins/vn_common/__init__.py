"""Vietnamese codes shared by the connectors and the social-assistance domain."""
