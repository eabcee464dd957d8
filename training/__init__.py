"""What only training uses: validation during training and the training display."""
