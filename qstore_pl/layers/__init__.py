"""What the Keras and torch layers share: the layer circuit, the QNode spec, the device
choice and circuit batches."""
