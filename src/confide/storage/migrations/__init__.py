"""The Alembic environment of confide's database (``env.py`` and ``versions/``).

Run programmatically by :mod:`confide.storage._migrate` (no ``alembic.ini``):
every start upgrades to the head, ``confide db`` upgrades, downgrades and
shows the revision. A migration changes tables and indexes only: it never
opens a sealed body (it has no key), so a migration must not rename a table or
a plain column (both are authenticated with each row, see ``_schema``).
"""
