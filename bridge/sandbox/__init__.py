"""Local stand-ins for the CRMs, speaking their documented wire formats over real HTTP."""
