"""Validation before user traffic moves: the pure analysis behind the validation gates (parity of
green with blue). Nothing here talks to a backend; drivers fetch the samples."""
