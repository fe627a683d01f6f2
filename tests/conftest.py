"""Shared by every test folder: puts tests/ on sys.path so the support modules
(``serving_support``, ``local_testkit``, ``moto_fixtures``) import from any subfolder."""
