from django.apps import AppConfig


class MapReduceConfig(AppConfig):
    name = "apps.mapreduce"
    label = "mapreduce"
