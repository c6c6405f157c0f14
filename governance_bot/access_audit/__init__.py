"""The weekly dual-access audit: managers, attestations, platform facts, findings and reports."""
