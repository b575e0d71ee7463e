"""The soak: a seeded, compressed day of Slack traffic with random faults on a real deployment,
judged by an independent checker (``make soak``; README, "The soak")."""
