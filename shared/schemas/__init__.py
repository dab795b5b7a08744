"""marshmallow schemas: the one validation layer, input and output schemas apart."""
