"""Helpers the test suite shares (the way Airflow keeps ``tests_common`` apart from the runtime)."""
