"""Measuring green before user traffic moves: the load test (locust in a subprocess) and the parity of
green with blue (pure statistics). Nothing here talks to a backend; drivers fetch the samples."""
