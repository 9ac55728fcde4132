"""Browser tests: node scripts driving the pages with playwright-core, and their platform."""
