"""Data vetting: filters that remove or change suspect records, with every decision written to a quarantine."""
