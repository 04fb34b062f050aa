"""Public pages: home, privacy policy, cookies, accessibility, contact; language switch."""
