"""Time series: reading (long/wide tables, UCR/UEA .ts), ROCKET-family and summary features."""
