"""Query models only the API and the pages use: lists, views, reports and their paging."""
