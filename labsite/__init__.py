import pymysql

# PyMySQL stands in for mysqlclient as Django's MySQL driver: pure Python, nothing to compile.
pymysql.install_as_MySQLdb()

from .celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
