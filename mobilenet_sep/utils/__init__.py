"""Small shared pieces with no model knowledge: atomic file writes, package data, argument checks, inputs."""
