"""The read side: PostgreSQL read models, their migrations, and the projector
that folds the engine's Kafka events into them."""
