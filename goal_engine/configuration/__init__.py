"""The configuration write side: goals, goal settings and activation (R1, R9-R11, R13).

Every change is one PostgreSQL transaction holding the change, its audit
entry and an outbox row with the event to publish; :mod:`.outbox` relays the
outbox to Kafka. So a change is never published without being stored, and
never stored without being published.
"""
