"""The dialog engine: typed button codes, the context of one event, dialogs as tables of steps."""
