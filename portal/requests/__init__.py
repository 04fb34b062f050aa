"""Rights requests (erasure, restriction, rectification, objection) and the DPO's handling."""
