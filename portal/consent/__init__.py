"""Marketing consents, cookie choices and the statistics that need consent."""
