"""The site directory: importing people and assets from spreadsheets."""
