"""Project-wide HTTP plumbing: no business rule and no import of the domain apps."""
