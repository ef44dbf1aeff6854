"""Program depth: the catalogue in force, coupons, coalitions, the daily sweep."""
