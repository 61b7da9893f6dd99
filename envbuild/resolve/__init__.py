"""Resolvers: turn an EnvSpec into locked packages for one target arch."""
