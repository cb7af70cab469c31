"""Small models written to exercise the patterns real SR architectures use (see each file)."""
