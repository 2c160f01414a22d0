"""Framework determinism: flag sets, the in-image hook, and the doctor."""
