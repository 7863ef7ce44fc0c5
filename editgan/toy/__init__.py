"""The embedded default domain: procedurally rendered cartoon faces with exact label maps."""
