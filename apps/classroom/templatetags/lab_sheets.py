"""The lab page's link to the lab's sheets: {% load lab_sheets %}{% sheets_of_lab lab.name as sheets %}."""

from django import template

from ..sheets import all_sheets

register = template.Library()


@register.simple_tag
def sheets_of_lab(lab_name):
    return [sheet for sheet in all_sheets().values() if sheet.lab == lab_name]
