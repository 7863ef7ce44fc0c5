"""The engine: EditGANModel (the networks of one model on one device), the editing loops, and label-map math."""
